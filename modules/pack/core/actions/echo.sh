#!/bin/sh
printf '%s\n' "$ATTUNE_PARAM_MESSAGE"
