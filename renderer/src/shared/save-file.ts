// Saves text the main side produced (an export) as a file: a Blob and an <a download>. In a browser the
// file goes where downloads go; in the desktop app Electron asks where to save it. Nothing is rendered.
export function saveTextFile(fileName: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has taken the bytes by the next turn; the URL is then released.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
