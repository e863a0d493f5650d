// libpq, PostgreSQL's C client (Debian libpq-dev): the fleet store's only way to the shared
// database. One connection is used by one thread at a time (libpq is not thread-safe per
// connection); see Sources/FleetStore.
#include <libpq-fe.h>
