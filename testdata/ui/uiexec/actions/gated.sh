#!/bin/sh
printf 'Hello, %s: waiting at the gate\n' "$ATTUNE_PARAM_NAME"
printf 'a line on stderr\n' >&2
read -r word < "$ATTUNE_PARAM_GATE"
printf 'Released with %s\n' "$word"
