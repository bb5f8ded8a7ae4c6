#!/bin/bash
# kafka-console-producer.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.ConsoleProducer).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
