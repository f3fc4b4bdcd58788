// The screens: each route's path pattern and component, and the navigation's entries. A path
// is matched against the routes in order (lib/router.js match), so /rules/new comes before
// /rules/:rule; a thing's own page has no entry: its list links to it.

import { Action } from './pages/action.js';
import { Actions } from './pages/actions.js';
import { Execution } from './pages/execution.js';
import { Executions } from './pages/executions.js';
import { Audit } from './pages/audit.js';
import { Identities } from './pages/identities.js';
import { Keys } from './pages/keys.js';
import { Tokens } from './pages/tokens.js';
import { PackPage, Packs } from './pages/packs.js';
import { NewRule, Rule, Rules } from './pages/rules.js';
import { TriggersPage } from './pages/triggers.js';
import { Inquiries, Inquiry } from './pages/inquiries.js';
import { Workflow } from './pages/workflow.js';
import { Dashboard } from './pages/dashboard.js';
import { Policies, PolicyPage } from './pages/policies.js';

export const nav = [
  { href: '/', label: 'Dashboard' },
  { href: '/executions', label: 'Executions' },
  { href: '/actions', label: 'Actions' },
  { href: '/rules', label: 'Rules' },
  { href: '/triggers', label: 'Triggers' },
  { href: '/packs', label: 'Packs' },
  { href: '/policies', label: 'Policies' },
  { href: '/inquiries', label: 'Inquiries' },
  { href: '/keys', label: 'Keys' },
  { href: '/identities', label: 'Identities', admin: true },
  { href: '/tokens', label: 'API tokens' },
  { href: '/audit', label: 'Audit log', admin: true },
];

export const routes = [
  { path: '/actions', component: Actions },
  { path: '/actions/:action_ref', component: Action },
  { path: '/executions', component: Executions },
  { path: '/executions/:id', component: Execution },
  { path: '/keys', component: Keys },
  { path: '/identities', component: Identities },
  { path: '/tokens', component: Tokens },
  { path: '/audit', component: Audit },
  { path: '/rules', component: Rules },
  { path: '/rules/new', component: NewRule },
  { path: '/rules/:rule', component: Rule },
  { path: '/triggers', component: TriggersPage },
  { path: '/packs', component: Packs },
  { path: '/packs/:pack', component: PackPage },
  { path: '/workflows/:id', component: Workflow },
  { path: '/inquiries', component: Inquiries },
  { path: '/inquiries/:id', component: Inquiry },
  { path: '/', component: Dashboard },
  { path: '/policies', component: Policies },
  { path: '/policies/:policy', component: PolicyPage },
];
