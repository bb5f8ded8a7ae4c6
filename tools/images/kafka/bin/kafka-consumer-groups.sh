#!/bin/bash
# kafka-consumer-groups.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
