#!/bin/sh
# Leaves evidence of its run when the worker's environment names a file in FAULTS_MARKS: a
# start line, and an end line with its exit code when it gets to its end, each with its
# execution, its pid, the worker process it ran under (FAULTS_INCARNATION) and the time as
# /proc/uptime says it (read without a fork, so that the load spawns as little as it can).
code=${ATTUNE_PARAM_EXIT:-0}
if [ -n "$FAULTS_MARKS" ]; then
  read -r up _ < /proc/uptime
  echo "start $ATTUNE_EXECUTION_ID $$ $FAULTS_INCARNATION $up" >> "$FAULTS_MARKS"
fi
sleep "${ATTUNE_PARAM_SECONDS:-0}"
if [ -n "$FAULTS_MARKS" ]; then
  read -r up _ < /proc/uptime
  echo "end $ATTUNE_EXECUTION_ID $$ $FAULTS_INCARNATION $up $code" >> "$FAULTS_MARKS"
fi
exit "$code"
