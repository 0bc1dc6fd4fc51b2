/**
 * The Inspector: Cove's web page to watch, steer and approve agents. Served by `cove serve` at /ui/ (see
 * cove/api/inspector.py); built by `make ui` from this folder.
 */

import "./styles.css";

import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";

import { AuthError } from "@cove/sdk/errors.js";

import { Api } from "./api/client.js";
import {
  type Credentials,
  forgetCredentials,
  home,
  identify,
  loadCredentials,
  reaches,
  saveCredentials,
  takeLinkToken,
} from "./api/credentials.js";
import { messageOf } from "./components/Problem.js";
import { followLink, href, type Route, useRoute } from "./lib/router.js";
import { SandboxesView } from "./views/SandboxesView.js";
import { SandboxView } from "./views/SandboxView.js";
import { SessionView } from "./views/session/SessionView.js";
import { SignIn } from "./views/SignIn.js";

function Breadcrumbs({ route, credentials }: { route: Route; credentials: Credentials }) {
  if (route.view !== "sandbox" && route.view !== "session") return null;
  const sandbox: Route = { view: "sandbox", sandboxId: route.sandboxId, tab: "sessions" };
  return (
    <nav aria-label="Breadcrumbs" class="breadcrumbs">
      {reaches(credentials, { view: "sandboxes" }) ? (
        <>
          <a href={href({ view: "sandboxes" })}>Sandboxes</a>
          <span aria-hidden="true">/</span>
        </>
      ) : null}
      {reaches(credentials, sandbox) ? (
        <a href={href(sandbox)} aria-current={route.view === "sandbox" ? "page" : undefined}>
          {route.sandboxId}
        </a>
      ) : (
        <span>{route.sandboxId}</span>
      )}
      {route.view === "session" ? (
        <>
          <span aria-hidden="true">/</span>
          <span aria-current="page">{route.sessionId}</span>
        </>
      ) : null}
    </nav>
  );
}

function View({ route, api, credentials }: { route: Route; api: Api; credentials: Credentials }) {
  // A token's page stays on its own sandbox or session: anything else is its home.
  const shown = reaches(credentials, route) ? route : home(credentials);
  switch (shown.view) {
    case "sandboxes":
      return <SandboxesView api={api} credentials={credentials} />;
    case "sandbox":
      return <SandboxView api={api} credentials={credentials} sandboxId={shown.sandboxId} tab={shown.tab} />;
    case "session":
      return <SessionView api={api} credentials={credentials} sandboxId={shown.sandboxId} sessionId={shown.sessionId} />;
    case "missing":
      return (
        <section class="page">
          <h1>Not found</h1>
          <p>
            Nothing lives at <code>{shown.path}</code>. <a href={href(home(credentials))}>Go back to the start.</a>
          </p>
        </section>
      );
  }
}

function App({ linkToken }: { linkToken: string | null }) {
  const [credentials, setCredentials] = useState(() => (linkToken ? null : loadCredentials()));
  const [opening, setOpening] = useState(linkToken !== null);
  const [reason, setReason] = useState<string | null>(null);
  const route = useRoute();

  const signIn = (signedIn: Credentials) => {
    saveCredentials(signedIn);
    setReason(null);
    setCredentials(signedIn);
  };

  useEffect(() => {
    // A shared link signs this tab in with its token, in place of whatever it held.
    if (!linkToken) return;
    forgetCredentials();
    identify(linkToken).then(signIn, (error: unknown) =>
      setReason(error instanceof AuthError ? "This link's token has expired or was revoked." : messageOf(error)),
    ).finally(() => setOpening(false));
  }, []);

  const api = useMemo(() => {
    if (!credentials) return null;
    const client = new Api(credentials);
    client.onUnauthorized = () => {
      forgetCredentials();
      setReason("The server no longer accepts this credential: sign in again.");
      setCredentials(null);
    };
    return client;
  }, [credentials]);

  if (opening) {
    return (
      <main class="sign-in">
        <p role="status">Opening the shared link…</p>
      </main>
    );
  }
  if (!credentials || !api) return <SignIn reason={reason} onSignedIn={signIn} />;
  return (
    <div class="app" onClick={followLink}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="bar">
        <a class="brand" href={href(home(credentials))}>
          Cove Inspector
        </a>
        <Breadcrumbs route={route} credentials={credentials} />
        {credentials.kind === "token" ? <span class="muted small">shared link: {credentials.scopes.join(", ")}</span> : null}
        <button
          type="button"
          class="sign-out"
          onClick={() => {
            forgetCredentials();
            setCredentials(null);
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main">
        <View route={route} api={api} credentials={credentials} />
      </main>
    </div>
  );
}

render(<App linkToken={takeLinkToken()} />, document.getElementById("app")!);
