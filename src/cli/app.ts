/** Placeholder replaced by the CLI helper. */
export function runCli(argv: string[], home: string): Promise<number> {
  console.log("funcx-endpoint", argv, home);
  return Promise.resolve(0);
}
