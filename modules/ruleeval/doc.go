// Package ruleeval is the template and expression language of rules and workflows: it
// evaluates rule conditions against an event, and renders templates and checks expressions
// over the names an Env declares (a rule's event, a workflow's input, vars and results).
package ruleeval
