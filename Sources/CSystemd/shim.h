// libsystemd (Debian's libsystemd-dev): the service manager's own implementation of socket
// activation (sd_listen_fds) and readiness notification (sd_notify).
#include <systemd/sd-daemon.h>
