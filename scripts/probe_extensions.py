#!/usr/bin/env python3
"""Dev-time probe: asks cedarpy (the Rust reference engine) how Cedar's extension types behave
and writes the answers as Swift Testing tables.

    python3 scripts/probe_extensions.py            # rewrite Tests/CedarTests/Extensions/Reference*.swift
    python3 scripts/probe_extensions.py --check    # only report whether the tables are current
    python3 scripts/probe_extensions.py --out DIR  # write the tables somewhere else

Every expected value in the generated tables comes from cedarpy: a value is read back from a
partial-evaluation residual (`principal.x == (EXPR)` with the principal unknown), an error is
the message cedarpy reports. Renderings that Cedar cannot show us (the canonical text of a
decimal, ip or datetime) are computed here and kept only after cedarpy confirms that the
rendering denotes the same value as the input. Needs cedarpy (4.12.x); not used by the build.
"""
import importlib.metadata
import ipaddress
import json
import pathlib
import re
import sys

import cedarpy

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "CedarTests" / "Extensions"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# --------------------------------------------------------------------------------------------
# Talking to cedarpy

_REQUEST = {"principal": None, "action": 'Action::"a"', "resource": 'R::"r"', "context": {}}
_EXT_ERROR = re.compile(r"error while evaluating `[A-Za-z]+` extension function: (.*)\Z", re.S)


def cedar_string(s):
    """A Cedar string literal; Cedar's escapes match JSON's for what we use."""
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def evaluate(expr):
    """('value', residual-json) or ('error', message) for one Cedar expression."""
    policy = "permit(principal,action,resource) when { principal.x == (%s) };" % expr
    result = cedarpy.is_authorized_partial(_REQUEST, policy, [])
    errors = list(result.diagnostics.errors)
    if errors:
        m = _EXT_ERROR.search(errors[0])
        if not m:
            raise SystemExit("unexpected cedarpy error for %s: %s" % (expr, errors[0]))
        return ("error", m.group(1))
    body = result.residuals["policy0"]["conditions"][0]["body"]
    found = _right_of_unknown_eq(body)
    if found is None:
        raise SystemExit("no residual for %s: %s" % (expr, json.dumps(body)))
    return ("value", found)


def _right_of_unknown_eq(node):
    if isinstance(node, dict):
        eq = node.get("==")
        if isinstance(eq, dict) and "unknown" in json.dumps(eq.get("left")):
            return eq["right"]
        for v in node.values():
            r = _right_of_unknown_eq(v)
            if r is not None:
                return r
    elif isinstance(node, list):
        for v in node:
            r = _right_of_unknown_eq(v)
            if r is not None:
                return r
    return None


def value_of(expr):
    kind, v = evaluate(expr)
    if kind == "error":
        raise SystemExit("expected a value from %s, got error %s" % (expr, v))
    if not (isinstance(v, dict) and "Value" in v):
        raise SystemExit("expected a primitive from %s, got %s" % (expr, v))
    return v["Value"]


def outcome(expr, read):
    """('ok', read(expr)) or ('invalid'|'overflow', message)."""
    kind, v = evaluate(expr)
    if kind == "error":
        return ("overflow" if "overflow" in v.lower() else "invalid", v)
    return ("ok", read(expr))


def long_of(expr):
    v = value_of(expr)
    assert isinstance(v, int) and not isinstance(v, bool), (expr, v)
    return v


def bool_of(expr):
    v = value_of(expr)
    assert isinstance(v, bool), (expr, v)
    return v


def confirm(expr):
    if bool_of(expr) is not True:
        raise SystemExit("cedarpy does not confirm: " + expr)


def datetime_expr(ms):
    return 'datetime("1970-01-01").offset(duration("%dms"))' % ms


def datetime_ms(expr):
    # Subtracting the epoch (0) cannot overflow, so this reads any datetime value.
    return long_of('(%s).durationSince(datetime("1970-01-01")).toMilliseconds()' % expr)


def duration_ms(expr):
    return long_of("(%s).toMilliseconds()" % expr)


def duration_rendering(ms):
    """The text Cedar prints for a computed duration, read from a residual."""
    kind, v = evaluate('datetime("1970-01-01").offset(duration("%dms")).durationSince(datetime("1970-01-01"))' % ms)
    assert kind == "value" and "duration" in v, v
    return v["duration"][0]["Value"]


def datetime_display(ms):
    """Cedar's printed form of a datetime, taken from an overflow message that embeds it."""
    if ms >= 0:
        kind, msg = evaluate("(%s).durationSince(%s)" % (datetime_expr(ms), datetime_expr(INT64_MIN)))
        prefix = "overflows when computing the duration between "
        assert kind == "error" and msg.startswith(prefix), msg
        return msg[len(prefix):].split(" and ")[0]
    kind, msg = evaluate('(%s).offset(duration("%dms"))' % (datetime_expr(ms), INT64_MIN))
    prefix = "overflows when adding an offset: "
    assert kind == "error" and msg.startswith(prefix), msg
    return msg[len(prefix):].rsplit("+(", 1)[0]


# --------------------------------------------------------------------------------------------
# Canonical renderings (kept only when cedarpy confirms them)

def decimal_rendering(scaled):
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10_000)
    digits = ("%04d" % frac).rstrip("0") or "0"
    return "%s%d.%s" % (sign, whole, digits)


def ip_rendering(s):
    net = ipaddress.ip_interface(s)
    text = str(net.ip) if isinstance(net.ip, ipaddress.IPv4Address) else net.ip.compressed
    if "." in text and ":" in text:
        raise SystemExit("python rendered an embedded IPv4 form for " + s)
    full = 32 if isinstance(net.ip, ipaddress.IPv4Address) else 128
    return text if net.network.prefixlen == full else "%s/%d" % (text, net.network.prefixlen)


def civil_from_days(z):
    z += 719468
    era = z // 146097  # floor division already rounds toward -inf
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def datetime_rendering(ms):
    days, tod = divmod(ms, 86_400_000)
    y, m, d = civil_from_days(days)
    if not 0 <= y <= 9999:
        return None
    out = "%04d-%02d-%02d" % (y, m, d)
    if tod == 0:
        return out
    secs, millis = divmod(tod, 1000)
    out += "T%02d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
    if millis:
        out += ".%03d" % millis
    return out + "Z"


# --------------------------------------------------------------------------------------------
# The questions

DECIMAL_PARSE = [
    "0.0", "1.0", "1.5", "-1.5", "1.05", "1.0500", "-0.05", "-0.0", "0.0001", "-0.0001",
    "12.34", "1.2345", "-1.2345", "123456789.1234", "01.5", "00000000000000000000000001.0",
    "0922337203685477.5807", "922337203685477.5807", "922337203685477.5808",
    "-922337203685477.5808", "-922337203685477.5809", "922337203685477.9999",
    "-922337203685477.9999", "922337203685478.0", "-922337203685478.0", "-922337203685477.0",
    "99999999999999999999.0", "99999999999999999999.00000", "922337203685478.00000",
    "1.", "+1.5", ".5", "-.5", " 1.5", "1.5 ", "1.5\n", "1", "-", "", "--1.5", "1.-5", "1.5.",
    "1,5", "1e5", "1.5e0", "0x1.0", "1.50000", "1.23456", "-922337203685477.58080",
    "\u0661.\u0665", "1.\u0665", "1.\u0665\u0665", "1.\u0665\u0665\u0665",
    "\u0661.\u0665\u0665\u0665\u0665\u0665", "\uff11.5", "1._5", "1_0.5", "922337203685478.0x",
]

DECIMAL_COMPARE = [
    ("1.0", "2.0"), ("2.0", "1.0"), ("1.2", "1.20"), ("-0.5", "0.0"), ("-1.5", "-1.4"),
    ("0.0", "-0.0"), ("-0.0001", "0.0"), ("922337203685477.5807", "-922337203685477.5808"),
    ("-922337203685477.5808", "-922337203685477.5807"), ("1.05", "1.5"), ("10.0", "9.9999"),
    ("-10.0", "-9.9999"), ("-0.5", "0.5"),
]

IP_PARSE = [
    "10.0.0.1", "0.0.0.0", "255.255.255.255", "127.0.0.1", "127.255.255.255", "127.0.0.1/8",
    "127.0.0.1/7", "128.0.0.1/1", "10.0.0.1/0", "10.0.0.1/24", "10.0.0.1/32", "224.0.0.1",
    "224.0.0.1/3", "224.0.0.1/4", "239.255.255.255", "240.0.0.0", "::", "::1", "::1/127",
    "::1/128", "::2", "0:0:0:0:0:0:0:1", "0000::1", "FE80::1", "ff00::", "ff00::/7", "ff00::/8",
    "ff02::1", "::ffff:7f00:1", "::ffff:e000:1", "::ffff:102:304", "2001:db8::/32",
    "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "1::", "::/0", "1:0:0:1::/64",
    "010.0.0.1", "10.0.0.01", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1.2.3.4.", " 10.0.0.1",
    "10.0.0.1 ", "", "a.b", "[::1]", "fe80::1%eth0", "1::2::3", "1:::2", ":1::", "g::1",
    "00000::1", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7::8", "::1:2:3:4:5:6:7:8", "1.2.3.4:80",
    "1.2:3.4", "a:1.2", "1:1.2.3.4", ":1.2.3.4", "1.2.3.4:", "::ffff:1.2.3.4", "::1.2.3.4",
    "64:ff9b::1.2.3.4", "::ffff:1.2.3.256", "::ffff:1.2.3.4/120", "1:2:3:4:5:6:1.2.3.4",
    "1.2.3.4::", "::1/1.2.3", "10.0.0.1/33", "10.0.0.1/024", "10.0.0.1/0008", "10.0.0.1/08",
    "10.0.0.1/00", "10.0.0.1/", "10.0.0.1/-1", "10.0.0.1/+8", "10.0.0.1/ 8", "10.0.0.1/a",
    "10.0.0.1/0a", "10.0.0.1/8/8", "1.2.3.4/32/", "10.0.0.1/\u0668", "10.0.0.1/\u0668\u0668",
    "::1/129", "::1/999", "::1/200", "::1/0128", "::1/00", "::1/000", "::1/12a", "::1/",
    "::1/1.2", "/8", "256.0.0.1/33", "010.0.0.1/024", "1.2.3.4:80/8", "::1.2/8",
]

IP_EQUAL = [
    ("10.0.0.1/24", "10.0.0.1/24"), ("10.0.0.1/24", "10.0.0.0/24"), ("127.0.0.1", "127.0.0.1/32"),
    ("::1", "0::1/128"), ("::ffff:7f00:1", "127.0.0.1"), ("FE80::1", "fe80::1"),
    ("10.0.0.1/24", "10.0.0.1/25"), ("::", "0.0.0.0"), ("0:0:0:0:0:0:0:1", "::1"),
]

IP_IN_RANGE = [
    ("10.0.0.1", "10.0.0.0/24"), ("10.0.0.0/24", "10.0.0.1/24"), ("10.0.0.0/23", "10.0.0.0/24"),
    ("10.0.0.0/24", "10.0.0.0/23"), ("10.0.0.1", "10.0.0.1"), ("10.0.0.1", "10.0.0.2"),
    ("10.0.0.1", "0.0.0.0/0"), ("::ffff:a00:1", "10.0.0.0/8"), ("10.0.0.1", "::/0"),
    ("::1", "::/0"), ("2001:db8::1", "2001:db8::/32"), ("2001:db9::1", "2001:db8::/32"),
    ("10.1.0.0/16", "10.0.0.0/8"), ("11.0.0.0/8", "10.0.0.0/7"), ("12.0.0.0/8", "10.0.0.0/7"),
    ("2001:db8::/33", "2001:db8::/32"), ("2001:db8::/31", "2001:db8::/32"),
    ("2001:db8:0:0:8000::/65", "2001:db8::/64"), ("::/0", "::/0"), ("0.0.0.0/0", "255.0.0.0/0"),
]

DURATION_PARSE = [
    "1d2h3m4s5ms", "1d", "2h", "3m", "4s", "5ms", "0ms", "-0ms", "-1d2h", "1s1ms", "1m1ms",
    "1d2m", "01h", "000000000000000000000001h", "0d0h0m0s0ms", "-1500ms", "-90s", "-25h", "25h",
    "2d12h", "9223372036854775807ms", "-9223372036854775808ms", "9223372036854775808ms",
    "-9223372036854775809ms", "106751991167d", "-106751991167d", "106751991168d",
    "106751991167d23h", "-106751991167d23h", "9223372036854775s807ms", "9223372036854775s808ms",
    "-9223372036854775s808ms", "99999999999999999999ms", "99999999999999999999d1x",
    "", "-", "h", "1", "1h1d", "1d1d", "1ms2s", "+1h", "1.5h", "1H", " 1h", "1h ", "1 h", "--1h",
    "1h-1m", "-1d-2h", "\u0661h", "1msm", "1d1h1m1s1ms1", "-9223372036854775807ms1ms", "1y",
]

DURATION_COMPARE = [
    ("1h", "2h"), ("60m", "1h"), ("-1ms", "0ms"), ("1d", "23h"), ("-1d", "-23h"),
]

DATETIME_PARSE = [
    "2024-01-01", "2024-02-29", "2000-02-29", "1600-02-29", "0000-02-29", "0000-01-01",
    "0001-01-01", "9999-12-31", "1969-12-31", "1582-10-10", "2024-12-31",
    "2024-01-01T00:00:00Z", "2024-01-01T23:59:59Z", "2024-01-01T00:00:00.123Z",
    "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00-0100", "2024-01-01T00:00:00+2359",
    "2024-01-01T00:00:00.123+0100", "2024-01-01T00:00:00.000+0000", "2024-01-01T00:00:00-0000",
    "2024-01-01T00:00:00.999-2359", "2024-01-01T10:00:00+0130", "2023-12-31T23:59:59.999+0100",
    "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59-2359", "0000-01-01T00:00:00+2359",
    "1969-12-31T23:59:59.999Z", "1969-12-31T23:00:00Z",
    "2023-02-29", "2024-02-30", "1900-02-29", "2100-02-29", "1700-02-29", "2024-04-31",
    "2024-06-31", "2024-11-31", "2024-13-01", "2024-00-01", "2024-01-00", "2024-01-32",
    "0000-02-30", "10000-01-01", "-001-01-01", "+2024-01-01", "2024-1-01", "2024/01/01",
    " 2024-01-01", "\uff12\uff10\uff12\uff14-01-01", "2024-01-0\u0661",
    "2024-01-01 ", "2024-01-012", "2024-01-01T", "2024-01-01Z", "2024-01-01T00:00Z",
    "2024-01-01t00:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T0\u0661:00:00Z",
    "2024-01-01T24:00:00Z", "2024-01-01T23:59:60Z", "2024-01-01T23:60:00Z", "2024-01-01T99:99:99Z",
    "2024-01-01T00:00:00", "2024-01-01T00:00:00z", "2024-01-01T00:00:00.12Z",
    "2024-01-01T00:00:00.1234Z", "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00+01",
    "2024-01-01T00:00:00+00000", "2024-01-01T00:00:00.123", "2024-01-01T00:00:00Z ",
    "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00+0000Z", "2024-01-01T00:00:00Z.123",
    "2024-01-01T00:00:00.+0100", "2024-01-01T00:00:00,123Z", "2024-01-01T00:00:00UTC",
    "2024-01-01T00:00:00+2400", "2024-01-01T00:00:00+0060", "2024-01-01T00:00:00+2360",
    "2024-01-01T00:00:00+9999", "2024-02-30T24:00:00Z", "2024-02-30T00:00Z",
    "2024-02-30T00:00:00.12Z", "2024-01-01T24:00:00+2400",
]

# Instants (ms since the epoch) for toDate/toTime: both sides of midnight and of the epoch,
# and the ends of Int64 where Cedar's floor to midnight stops being representable.
DAY_INSTANTS = [
    0, 1, -1, 86_399_999, 86_400_000, -86_400_000, -86_400_001, -3_600_000, 1_704_103_200_000,
    -62_167_219_199_000, -62_167_305_540_000, 253_402_300_799_999,
    INT64_MAX, INT64_MIN, INT64_MIN + 1, -9_223_372_036_828_800_000, -9_223_372_036_828_800_001,
]

OFFSETS = [
    (0, 0), (0, INT64_MAX), (0, INT64_MIN), (86_400_000, INT64_MAX), (-1, INT64_MIN),
    (1_704_067_200_000, 3_600_000), (1_704_067_200_000, -86_400_000), (INT64_MAX, -1),
    (INT64_MAX, 1), (INT64_MIN, -1), (INT64_MIN, INT64_MAX), (INT64_MAX, INT64_MIN),
]

DURATIONS_SINCE = [
    (0, 0), (0, INT64_MIN), (-1, INT64_MIN), (INT64_MAX, -1), (INT64_MAX, 0), (INT64_MIN, 0),
    (INT64_MIN, 1), (1_704_067_200_000, 0), (253_402_214_400_000, -62_167_219_200_000),
    (0, 1_704_067_200_000),
]

DATETIME_COMPARE = [
    ("2024-01-01", "2024-01-02"), ("2024-01-01T00:00:00Z", "2024-01-01"),
    ("2024-01-01T01:00:00+0100", "2024-01-01"), ("2024-01-01T00:00:00.001Z", "2024-01-01"),
    ("1969-12-31", "1970-01-01"),
]


# --------------------------------------------------------------------------------------------
# Asking

def probe():
    t = {}

    rows = []
    for s in DECIMAL_PARSE:
        e = "decimal(%s)" % cedar_string(s)
        kind, v = evaluate(e)
        if kind == "error":
            rows.append((s, ("overflow" if "overflow" in v else "invalid", v)))
            continue
        scaled = _decimal_scaled(s)
        confirm("%s == decimal(%s)" % (e, cedar_string(_decimal_fixed(scaled))))
        rows.append((s, ("ok", scaled)))
    t["decimalParse"] = rows
    t["decimalDescription"] = []
    for s, (kind, v) in rows:
        if kind == "ok":
            r = decimal_rendering(v)
            confirm("decimal(%s) == decimal(%s)" % (cedar_string(s), cedar_string(r)))
            t["decimalDescription"].append((s, r))
    t["decimalCompare"] = []
    for a, b in DECIMAL_COMPARE:
        da, db = "decimal(%s)" % cedar_string(a), "decimal(%s)" % cedar_string(b)
        t["decimalCompare"].append((a, b, [bool_of("%s.%s(%s)" % (da, m, db)) for m in
                                           ("lessThan", "lessThanOrEqual", "greaterThan",
                                            "greaterThanOrEqual")] + [bool_of("%s == %s" % (da, db))]))

    t["ipParse"] = []
    for s in IP_PARSE:
        e = "ip(%s)" % cedar_string(s)
        kind, v = evaluate(e)
        if kind == "error":
            t["ipParse"].append((s, ("overflow" if "overflow" in v else "invalid", v)))
        else:
            facts = [bool_of("%s.%s()" % (e, m)) for m in ("isIpv4", "isIpv6", "isLoopback", "isMulticast")]
            t["ipParse"].append((s, ("ok", facts)))
    t["ipDescription"] = []
    for s, (kind, _) in t["ipParse"]:
        if kind == "ok":
            r = ip_rendering(s)
            confirm("ip(%s) == ip(%s)" % (cedar_string(s), cedar_string(r)))
            t["ipDescription"].append((s, r))
    t["ipEqual"] = [(a, b, bool_of("ip(%s) == ip(%s)" % (cedar_string(a), cedar_string(b)))) for a, b in IP_EQUAL]
    t["ipInRange"] = [(a, b, bool_of("ip(%s).isInRange(ip(%s))" % (cedar_string(a), cedar_string(b))))
                      for a, b in IP_IN_RANGE]

    t["durationParse"] = [(s, outcome("duration(%s)" % cedar_string(s), duration_ms)) for s in DURATION_PARSE]
    t["durationConversions"] = []
    t["durationDescription"] = []
    for s, (kind, ms) in t["durationParse"]:
        if kind != "ok":
            continue
        e = "duration(%s)" % cedar_string(s)
        t["durationConversions"].append((s, [long_of("%s.%s()" % (e, m)) for m in
                                             ("toMilliseconds", "toSeconds", "toMinutes", "toHours", "toDays")]))
        t["durationDescription"].append((ms, duration_rendering(ms)))
    t["durationCompare"] = []
    for a, b in DURATION_COMPARE:
        da, db = "duration(%s)" % cedar_string(a), "duration(%s)" % cedar_string(b)
        t["durationCompare"].append((a, b, [bool_of("%s < %s" % (da, db)), bool_of("%s == %s" % (da, db))]))

    t["datetimeParse"] = [(s, outcome("datetime(%s)" % cedar_string(s), datetime_ms)) for s in DATETIME_PARSE]
    t["datetimeDescription"] = []
    seen = set()
    for ms in [v for _, (k, v) in t["datetimeParse"] if k == "ok"] + DAY_INSTANTS:
        if ms in seen:
            continue
        seen.add(ms)
        r = datetime_rendering(ms)
        if r is None:
            r = datetime_display(ms)
        else:
            confirm("datetime(%s) == %s" % (cedar_string(r), datetime_expr(ms)))
        t["datetimeDescription"].append((ms, r))
    t["datetimeDay"] = []
    for ms in DAY_INSTANTS:
        e = datetime_expr(ms)
        assert datetime_ms(e) == ms
        t["datetimeDay"].append((ms, outcome("(%s).toDate()" % e, datetime_ms),
                                 duration_ms("(%s).toTime()" % e)))
    t["datetimeOffset"] = [(a, d, outcome('(%s).offset(duration("%dms"))' % (datetime_expr(a), d), datetime_ms))
                           for a, d in OFFSETS]
    t["datetimeDurationSince"] = [(a, b, outcome("(%s).durationSince(%s)" % (datetime_expr(a), datetime_expr(b)),
                                                 duration_ms)) for a, b in DURATIONS_SINCE]
    t["datetimeCompare"] = []
    for a, b in DATETIME_COMPARE:
        da, db = "datetime(%s)" % cedar_string(a), "datetime(%s)" % cedar_string(b)
        t["datetimeCompare"].append((a, b, [bool_of("%s < %s" % (da, db)), bool_of("%s == %s" % (da, db))]))
    return t


def _decimal_fixed(scaled):
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10_000)
    return "%s%d.%04d" % (sign, whole, frac)


def _decimal_scaled(s):
    """Candidate value of an accepted literal; cedarpy confirms it against a 4-digit form."""
    neg = s.startswith("-")
    whole, frac = s.lstrip("-").split(".")
    v = int(whole) * 10_000 + int(frac.ljust(4, "0"))
    return -v if neg else v


# --------------------------------------------------------------------------------------------
# Writing Swift

def swift_string(s):
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F or (o > 0x7F and not ch.isprintable()):
            out.append("\\u{%X}" % o)
        elif o > 0x7F:
            # Non-ASCII digits look like ASCII ones in an editor: spell them out.
            out.append("\\u{%X}" % o)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def swift_outcome(o, render):
    kind, v = o
    if kind == "ok":
        return ".success(%s)" % render(v)
    return ".failure(.%s(%s))" % ("overflow" if kind == "overflow" else "invalidLiteral", swift_string(v))


def swift_bool(b):
    return "true" if b else "false"


def header(kind):
    return (
        "// Generated by scripts/probe_extensions.py from cedarpy %s (the Rust reference engine).\n"
        "// Do not edit: change the questions in the script and run it again.\n"
        "import Cedar\n\n"
        "/// Cedar's answers for `%s`." % (importlib.metadata.version("cedarpy"), kind)
    )


def emit(t):
    files = {}

    lines = [header("decimal"), "enum ReferenceDecimal {"]
    lines.append("    static let parse: [ExtParseCase<Int64>] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_outcome(o, str)) for s, o in t["decimalParse"]]
    lines.append("    ]\n")
    lines.append("    static let description: [ExtRenderCase] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_string(r)) for s, r in t["decimalDescription"]]
    lines.append("    ]\n")
    lines.append("    static let compare: [DecimalComparisonCase] = [")
    lines += ["        .init(%s, %s, lessThan: %s, lessThanOrEqual: %s, greaterThan: %s, greaterThanOrEqual: %s, equal: %s),"
              % ((swift_string(a), swift_string(b)) + tuple(swift_bool(x) for x in r)) for a, b, r in t["decimalCompare"]]
    lines.append("    ]")
    lines.append("}")
    files["ReferenceDecimal.swift"] = "\n".join(lines) + "\n"

    lines = [header("ipaddr"), "enum ReferenceIPAddr {"]
    lines.append("    static let parse: [ExtParseCase<IPFacts>] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_outcome(
        o, lambda f: ".init(isIPv4: %s, isIPv6: %s, isLoopback: %s, isMulticast: %s)" % tuple(swift_bool(x) for x in f)))
        for s, o in t["ipParse"]]
    lines.append("    ]\n")
    lines.append("    static let description: [ExtRenderCase] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_string(r)) for s, r in t["ipDescription"]]
    lines.append("    ]\n")
    lines.append("    static let equal: [ExtPairCase] = [")
    lines += ["        .init(%s, %s, %s)," % (swift_string(a), swift_string(b), swift_bool(r)) for a, b, r in t["ipEqual"]]
    lines.append("    ]\n")
    lines.append("    static let isInRange: [ExtPairCase] = [")
    lines += ["        .init(%s, %s, %s)," % (swift_string(a), swift_string(b), swift_bool(r)) for a, b, r in t["ipInRange"]]
    lines.append("    ]")
    lines.append("}")
    files["ReferenceIPAddr.swift"] = "\n".join(lines) + "\n"

    lines = [header("duration"), "enum ReferenceDuration {"]
    lines.append("    static let parse: [ExtParseCase<Int64>] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_outcome(o, str)) for s, o in t["durationParse"]]
    lines.append("    ]\n")
    lines.append("    static let conversions: [DurationConversionCase] = [")
    lines += ["        .init(%s, milliseconds: %d, seconds: %d, minutes: %d, hours: %d, days: %d)," % ((swift_string(s),) + tuple(r))
              for s, r in t["durationConversions"]]
    lines.append("    ]\n")
    lines.append("    /// Cedar's rendering of a computed duration, read from a residual.")
    lines.append("    static let description: [ExtInstantRenderCase] = [")
    lines += ["        .init(%d, %s)," % (ms, swift_string(r)) for ms, r in t["durationDescription"]]
    lines.append("    ]\n")
    lines.append("    static let compare: [ExtOrderCase] = [")
    lines += ["        .init(%s, %s, less: %s, equal: %s)," % (swift_string(a), swift_string(b), swift_bool(r[0]), swift_bool(r[1]))
              for a, b, r in t["durationCompare"]]
    lines.append("    ]")
    lines.append("}")
    files["ReferenceDuration.swift"] = "\n".join(lines) + "\n"

    lines = [header("datetime"), "enum ReferenceDatetime {"]
    lines.append("    /// Expected value: milliseconds since the epoch.")
    lines.append("    static let parse: [ExtParseCase<Int64>] = [")
    lines += ["        .init(%s, %s)," % (swift_string(s), swift_outcome(o, str)) for s, o in t["datetimeParse"]]
    lines.append("    ]\n")
    lines.append("    /// Literal renderings were confirmed equal by cedarpy; outside years 0000-9999 the")
    lines.append("    /// expected text is Cedar's own display, copied from one of its messages.")
    lines.append("    static let description: [ExtInstantRenderCase] = [")
    lines += ["        .init(%d, %s)," % (ms, swift_string(r)) for ms, r in t["datetimeDescription"]]
    lines.append("    ]\n")
    lines.append("    static let day: [DatetimeDayCase] = [")
    lines += ["        .init(%d, toDate: %s, toTime: %d)," % (ms, swift_outcome(o, str), tt) for ms, o, tt in t["datetimeDay"]]
    lines.append("    ]\n")
    lines.append("    /// Instant plus a duration in milliseconds.")
    lines.append("    static let offset: [DatetimeArithmeticCase] = [")
    lines += ["        .init(%d, %d, %s)," % (a, b, swift_outcome(o, str)) for a, b, o in t["datetimeOffset"]]
    lines.append("    ]\n")
    lines.append("    /// First instant minus the second.")
    lines.append("    static let durationSince: [DatetimeArithmeticCase] = [")
    lines += ["        .init(%d, %d, %s)," % (a, b, swift_outcome(o, str)) for a, b, o in t["datetimeDurationSince"]]
    lines.append("    ]\n")
    lines.append("    static let compare: [ExtOrderCase] = [")
    lines += ["        .init(%s, %s, less: %s, equal: %s)," % (swift_string(a), swift_string(b), swift_bool(r[0]), swift_bool(r[1]))
              for a, b, r in t["datetimeCompare"]]
    lines.append("    ]")
    lines.append("}")
    files["ReferenceDatetime.swift"] = "\n".join(lines) + "\n"
    return files


def main():
    global OUT
    if "--out" in sys.argv:
        OUT = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
    files = emit(probe())
    stale = [n for n, text in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
    if "--check" in sys.argv:
        print("stale: " + ", ".join(stale) if stale else "reference tables are current")
        sys.exit(1 if stale else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    rows = sum(text.count("\n        .init(") for text in files.values())
    print("wrote %d files, %d table rows, to %s" % (len(files), rows, OUT))


if __name__ == "__main__":
    main()
