// listAll reads every page of a list, for the short lists (rules, triggers, a pack's
// components) that a screen filters on what the API does not filter on. It stops at max
// items, which no installation's list of components comes near.

import { api } from './api.js';

export async function listAll(path, params = {}, max = 5000) {
  const out = [];
  for (let page = 1; ; page++) {
    const { data, pagination } = await api.get(path, { ...params, page, per_page: 100 });
    out.push(...data);
    if (page >= pagination.total_pages || out.length >= max) return out;
  }
}
