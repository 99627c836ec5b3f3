// Every page is prerendered to static HTML; the reader's text and the model arrive in the browser.
export const prerender = true;
export const trailingSlash = 'never';
