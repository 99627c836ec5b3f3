/** Links inside the app, with the reader's state (text, model, settings) carried in the query. */
import { asset, resolve } from '$app/paths';

/** The site's root as an absolute URL without the trailing slash, e.g. "https://host/glassbox" (browser only). */
export function siteBase(): string {
  return new URL(asset('/'), location.href).href.replace(/\/$/, '');
}

/** The path of an app page (e.g. "/whole-machine"), relative to where the site is served. */
export function pagePath(path: string): string {
  return resolve(path as '/');
}

/** A link to an app page that keeps the reader's state. */
export function pageHref(path: string, query: string): string {
  return query ? `${pagePath(path)}?${query}` : pagePath(path);
}
