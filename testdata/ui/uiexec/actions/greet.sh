#!/bin/sh
printf 'Hello, %s (%s)!\n' "$ATTUNE_PARAM_NAME" "$ATTUNE_PARAM_MOOD"
if [ "$ATTUNE_PARAM_PASSWORD" = 'open-sesame-42' ]; then echo 'password right'; else echo 'password wrong'; fi
