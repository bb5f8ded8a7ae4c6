#!/bin/bash
# kafka-console-consumer.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.consumer.ConsoleConsumer).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
