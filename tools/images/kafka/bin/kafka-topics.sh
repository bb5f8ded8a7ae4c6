#!/bin/bash
# kafka-topics.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.TopicCommand).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
