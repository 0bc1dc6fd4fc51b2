/** An error, said where it happened and announced to assistive technology. */

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="problem" role="alert">
      {messageOf(error)}
    </p>
  );
}
