#!/bin/bash
# kafka-run-class.sh CLASS [ARGS...]: run a Kafka class on /opt/kafka/libs, as the
# distribution's script does, with its variables: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS,
# KAFKA_OPTS, KAFKA_LOG4J_OPTS, JAVA_HOME. The JVM replaces this shell.
set -euo pipefail
base=/opt/kafka
[ $# -ge 1 ] || { echo "usage: kafka-run-class.sh CLASS [ARGS...]" >&2; exit 2; }
java=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}/bin/java
# The tools' default: warnings only, on stderr, so their output stays clean.
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=$base/config/tools-log4j2.xml}"
# The local stack's defaults for a short-lived tool: a small heap and the C1 JIT only.
: "${KAFKA_HEAP_OPTS:=-Xmx256m}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
# shellcheck disable=SC2086 # each *_OPTS is a list of options
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} \
    -cp "$base/libs/*" "$@"
