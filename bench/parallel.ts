/** A bounded fan-out for the benchmarks (no imports: the floor's separate process loads it too). */

/** Runs `fn` over `items` with `width` at a time. */
export async function parallel<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}
