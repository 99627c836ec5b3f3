/**
 * Errors in the browser: an unknown address is not a fault (the 404 page says what happened), so it is not
 * logged; anything else is, as SvelteKit would.
 */
import type { HandleClientError } from '@sveltejs/kit';

export const handleError: HandleClientError = ({ error, status, message }) => {
  if (status !== 404) console.error(error);
  return { message };
};
