package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Role is a part of Attune that a process can run.
type Role string

// The roles, in start order: the api comes up last so that it only takes requests once the
// roles behind it run, and stops first.
const (
	RoleWorker   Role = "worker"
	RoleExecutor Role = "executor"
	RoleSensor   Role = "sensor"
	RoleAPI      Role = "api"
)

// AllRoles lists every role in start order.
var AllRoles = []Role{RoleWorker, RoleExecutor, RoleSensor, RoleAPI}

// ParseRoles reads a --roles value: "all" or a comma list of role names.
func ParseRoles(s string) ([]Role, error) {
	valid := "valid roles are api, sensor, executor, worker, or all"
	var picked []Role
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch {
		case name == "all":
			picked = append(picked, AllRoles...)
		case slices.Contains(AllRoles, Role(name)):
			picked = append(picked, Role(name))
		case name == "":
			return nil, fmt.Errorf("invalid --roles %q: empty role name; %s", s, valid)
		default:
			return nil, fmt.Errorf("invalid --roles %q: unknown role %q; %s", s, name, valid)
		}
	}
	// Keep start order whatever order the user wrote.
	var roles []Role
	for _, r := range AllRoles {
		if slices.Contains(picked, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// hasAllRoles reports whether roles covers every role, as one process alone can talk through
// the in-process broker.
func hasAllRoles(roles []Role) bool {
	return len(roles) == len(AllRoles)
}

func roleNames(roles []Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ",")
}

// completeRoles completes a --roles value: all or a role, and after a comma each role the
// list does not name yet, so that a comma list is built a role at a time.
func completeRoles(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	listed := toComplete[:strings.LastIndex(toComplete, ",")+1]
	var names []string
	if listed == "" {
		names = append(names, "all")
	}
	for _, r := range AllRoles {
		if !slices.Contains(strings.Split(listed, ","), string(r)) {
			names = append(names, string(r))
		}
	}
	var choices []cobra.Completion
	for _, name := range names {
		if strings.HasPrefix(listed+name, toComplete) {
			choices = append(choices, listed+name)
		}
	}
	// No space after a role: a comma and another may follow.
	return choices, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
