#!/bin/sh
# Fails until it has run more than $ATTUNE_PARAM_FAILURES times, counting its runs in the file
# $ATTUNE_PARAM_COUNTER.
n=$(( $(cat "$ATTUNE_PARAM_COUNTER" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$ATTUNE_PARAM_COUNTER"
echo "attempt $n"
[ "$n" -gt "$ATTUNE_PARAM_FAILURES" ]
