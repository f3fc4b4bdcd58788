// Package app is Attune's composition root: the cobra commands, configuration from flags,
// ATTUNE_* environment variables and defaults (in that order), and the wiring of roles onto
// one pool, one broker connection and one HTTP server. It is the only package that picks
// concrete adapters or reads the environment.
package app
