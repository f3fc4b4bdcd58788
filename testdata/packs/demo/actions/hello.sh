#!/bin/sh
printf 'Hello, %s!\n' "$ATTUNE_PARAM_NAME"
