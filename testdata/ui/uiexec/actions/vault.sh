#!/bin/sh
# Says what the secrets are like, never what they are: the output is shown.
params=$(cat)
echo "note: $ATTUNE_PARAM_NOTE"
if [ "$ATTUNE_PARAM_TOKEN" = 'vault-default-7' ]; then echo 'token is its default'; else echo 'token is not its default'; fi
if [ "$ATTUNE_PARAM_FLAG" = 'true' ]; then echo 'flag is on'; else echo 'flag is off'; fi
case "$params" in *'"config":{"depth":3}'*) echo 'config is deep' ;; *) echo 'config is not deep' ;; esac
if [ "$ATTUNE_PARAM_TIER" = 'silver' ]; then echo 'tier is the second'; else echo 'tier is not the second'; fi
