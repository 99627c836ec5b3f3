/**
 * Reading progress, remembered in this browser only (localStorage): which chapters the reader has opened
 * and which "predict, then reveal" answers they have seen. Storage may be unavailable (private modes);
 * then progress simply lasts for the visit.
 */
const KEY = 'glassbox.progress';

interface Progress {
  visited: string[];
  revealed: string[];
}

export const progress: Progress = $state({ visited: [], revealed: [] });

export function restoreProgress(): void {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Progress>;
    if (Array.isArray(saved.visited)) progress.visited = saved.visited.filter((s) => typeof s === 'string');
    if (Array.isArray(saved.revealed))
      progress.revealed = saved.revealed.filter((s) => typeof s === 'string');
  } catch {
    // Nothing saved, or storage unavailable: start fresh.
  }
}

function save(): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(progress));
  } catch {
    // Storage full or unavailable: progress lasts for this visit only.
  }
}

export function markVisited(slug: string): void {
  if (!progress.visited.includes(slug)) {
    progress.visited.push(slug);
    save();
  }
}

export function markRevealed(id: string): void {
  if (!progress.revealed.includes(id)) {
    progress.revealed.push(id);
    save();
  }
}
