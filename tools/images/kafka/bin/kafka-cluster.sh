#!/bin/bash
# kafka-cluster.sh: as the Kafka distribution's script of that name (org.apache.kafka.tools.ClusterTool).
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.ClusterTool "$@"
