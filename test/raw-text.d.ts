// Vite's `?raw` imports (a file's text as a string), used by tests that compare a doc with generated text.
declare module "*?raw" {
  const text: string;
  export default text;
}
