// The screens: each route's path pattern and component, and the navigation's entries.

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
  { path: '/', component: Dashboard },
  { path: '/policies', component: Policies },
  { path: '/policies/:policy', component: PolicyPage },
];
