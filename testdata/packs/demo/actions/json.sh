#!/bin/sh
printf '{"name": "%s", "count": %s}\n' "$ATTUNE_PARAM_NAME" "$ATTUNE_PARAM_COUNT"
