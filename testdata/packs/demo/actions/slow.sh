#!/bin/sh
sleep "$ATTUNE_PARAM_SECONDS"
