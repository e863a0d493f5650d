// libmicrohttpd (Debian libmicrohttpd-dev). Its start and info calls are C variadic functions,
// which Swift cannot call: these inline wrappers give them fixed signatures.
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// The connection's socket, for SO_PEERCRED; -1 when libmicrohttpd will not say.
static inline int custos_mhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? (int)info->connect_fd : -1;
}

/// Percent-decodes the URL's path and each query key and value in place, as libmicrohttpd's
/// own decoder does, except `%00`: decoded, the NUL would end the C string the handler reads, so
/// everything after it (`/de/public/x%00/../../clinical/y`) would vanish from the decision
/// while the server behind still sees it. It is kept as the text `%00`, which the front door
/// refuses (HTTPListener).
static size_t custos_mhd_unescape(void *cls, struct MHD_Connection *connection, char *s) {
    (void)cls; (void)connection;
    char *r = s, *w = s;
    while (*r) {
        int hi = -1, lo = -1;
        if (r[0] == '%' && r[1] && r[2]) {
            char a = r[1], b = r[2];
            hi = (a >= '0' && a <= '9') ? a - '0' : (a >= 'a' && a <= 'f') ? a - 'a' + 10 : (a >= 'A' && a <= 'F') ? a - 'A' + 10 : -1;
            lo = (b >= '0' && b <= '9') ? b - '0' : (b >= 'a' && b <= 'f') ? b - 'a' + 10 : (b >= 'A' && b <= 'F') ? b - 'A' + 10 : -1;
        }
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/// Starts a daemon on an already listening socket with every limit given explicitly.
static inline struct MHD_Daemon *custos_mhd_start(unsigned int flags, int listen_fd,
        MHD_AccessHandlerCallback handler, void *handler_cls,
        MHD_RequestCompletedCallback completed, MHD_NotifyConnectionCallback notify,
        unsigned int connection_limit, unsigned int per_ip_limit, size_t memory_limit,
        unsigned int timeout_seconds, size_t thread_stack_size) {
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_seconds,
        MHD_OPTION_THREAD_STACK_SIZE, thread_stack_size,
        MHD_OPTION_NOTIFY_COMPLETED, completed, handler_cls,
        MHD_OPTION_NOTIFY_CONNECTION, notify, handler_cls,
        MHD_OPTION_UNESCAPE_CALLBACK, custos_mhd_unescape, NULL,
        MHD_OPTION_END);
}

/// The per-connection pointer set in the connection notification callback.
static inline void *custos_mhd_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}
