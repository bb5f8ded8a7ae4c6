#!/bin/bash
# kafka-server-start.sh [-daemon] server.properties [--override property=value]...: the broker,
# with deploy/local's JVM settings unless KAFKA_HEAP_OPTS / KAFKA_JVM_PERFORMANCE_OPTS say
# otherwise. -daemon is accepted and ignored: in a container the broker stays in front (PID 1
# when the entrypoint execs this script; it shuts down cleanly on SIGTERM).
set -euo pipefail
[ "${1:-}" != -daemon ] || shift
[ $# -ge 1 ] || { echo "usage: kafka-server-start.sh [-daemon] server.properties [--override property=value]*" >&2; exit 1; }
: "${KAFKA_HEAP_OPTS:=-Xms128m -Xmx512m}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml}"
export KAFKA_HEAP_OPTS KAFKA_LOG4J_OPTS
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
