#!/bin/bash
# kafka-storage.sh: as the Kafka distribution's script of that name (kafka.tools.StorageTool).
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
