#!/bin/bash
# kafka-acls.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.AclCommand).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.AclCommand "$@"
