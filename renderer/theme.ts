/**
 * The renderer's colour scheme follows the system (light or dark), stored on <html data-theme>
 * so CSS can key off one attribute. Kept DOM-only: the renderer never touches Node or Electron.
 */
export type Theme = "light" | "dark";

export function preferredTheme(matchMedia: (query: string) => { matches: boolean }): Theme {
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme(root: HTMLElement, theme: Theme): void {
  root.dataset["theme"] = theme;
}
