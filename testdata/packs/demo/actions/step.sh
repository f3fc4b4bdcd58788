#!/bin/sh
# Records when it starts and ends, so that a test can check how many ran at once and in
# which order.
echo "start $ATTUNE_PARAM_SEQ $(date +%s.%N)" >> "$ATTUNE_PARAM_LOG"
sleep "$ATTUNE_PARAM_SECONDS"
echo "end $ATTUNE_PARAM_SEQ $(date +%s.%N)" >> "$ATTUNE_PARAM_LOG"
