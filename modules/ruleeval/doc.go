// Package ruleeval evaluates rule conditions against an event and renders a rule's templated
// action parameters.
package ruleeval
