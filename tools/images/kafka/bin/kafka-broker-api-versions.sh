#!/bin/bash
# kafka-broker-api-versions.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.BrokerApiVersionsCommand).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
