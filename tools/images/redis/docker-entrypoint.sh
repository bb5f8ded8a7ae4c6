#!/bin/sh
# Entrypoint of localhost/polyglot/redis:7.0, as upstream's: `docker-entrypoint.sh --port 7000`
# or `docker-entrypoint.sh /etc/redis/redis.conf` run redis-server with them; any other command
# runs as given. redis-server replaces this shell (PID 1; it saves and exits on SIGTERM).
set -eu
case ${1:-} in
-* | *.conf) set -- redis-server "$@" ;;
esac
exec "$@"
