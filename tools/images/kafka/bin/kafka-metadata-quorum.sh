#!/bin/bash
# kafka-metadata-quorum.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.MetadataQuorumCommand).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.MetadataQuorumCommand "$@"
