#!/bin/bash
# kafka-configs.sh: as the Kafka distribution's script of that name (kafka.admin.ConfigCommand).
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
