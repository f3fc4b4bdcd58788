#!/bin/sh
exec sleep "$ATTUNE_PARAM_SECONDS"
