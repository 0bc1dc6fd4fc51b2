/**
 * Sign-in with an API key. The key is checked against the server, then kept in this tab's session storage only:
 * closing the tab forgets it, and it is never put in a URL.
 */

import { useState } from "preact/hooks";

import { AuthError } from "@cove/sdk/errors.js";

import { type Credentials, identify } from "../api/credentials.js";
import { Problem } from "../components/Problem.js";
import { useAction } from "../lib/action.js";

export function SignIn({ onSignedIn, reason }: { onSignedIn: (credentials: Credentials) => void; reason: string | null }) {
  const [key, setKey] = useState("");
  const action = useAction();

  return (
    <main class="sign-in">
      <form
        class="card"
        aria-labelledby="sign-in-title"
        onSubmit={(event) => {
          event.preventDefault();
          void action.run(async () => {
            try {
              onSignedIn(await identify(key.trim()));
            } catch (caught) {
              throw caught instanceof AuthError ? new Error("The server refused this key.") : caught;
            }
          });
        }}
      >
        <h1 id="sign-in-title">Cove Inspector</h1>
        <p class="muted">
          Sign in with an API key. On the server's machine the admin key is in <code>$COVE_HOME/admin_key</code>.
        </p>
        <label>
          API key
          <input
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={key}
            required
            onInput={(event) => setKey(event.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={action.busy || !key.trim()}>
          Sign in
        </button>
        <p class="muted small">The key stays in this tab until it closes.</p>
        <Problem error={action.error ?? reason} />
      </form>
    </main>
  );
}
