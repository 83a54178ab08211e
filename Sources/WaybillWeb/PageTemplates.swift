import Mustache

/// The web app's HTML: swift-mustache templates compiled once at start. They live in the binary
/// (not beside it) so an installed `waybill` needs nothing but itself to serve its pages.
///
/// Every page is a content template rendered into `layout`'s `{{{content}}}`; values are
/// HTML-escaped by `{{…}}`, and only the rendered content goes unescaped.
enum PageTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            do { try library.register(text, named: name) } catch { fatalError("web template \(name): \(error)") }
        }
        return library
    }()

    static let templates: [String: String] = [
        "layout": layout, "login": login, "directives": directives, "directive-form": directiveForm,
        "directive-new": directiveNew, "directive": directive, "error": error, "admin": admin, "users": users,
        "activity": activity, "message": message, "quarantine": quarantine, "quarantine-entry": quarantineEntry,
        "queue": queue, "journal": journal, "account": account,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Waybill</title>
        <link rel="stylesheet" href="/app.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="bar">
          <a class="brand" href="/">Waybill</a>
          {{#user}}
          <nav aria-label="Main">
            <a href="/directives"{{#navDirectives}} aria-current="page"{{/navDirectives}}>Directives</a>
            <a href="/activity"{{#navActivity}} aria-current="page"{{/navActivity}}>Activity</a>
            {{#isAdmin}}<a href="/admin"{{#navAdmin}} aria-current="page"{{/navAdmin}}>Admin</a>{{/isAdmin}}
            <a href="/account"{{#navAccount}} aria-current="page"{{/navAccount}}>{{name}}</a>
          </nav>
          <form method="post" action="/logout" class="signout">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <button type="submit" class="link">Sign out</button>
          </form>
          {{/user}}
        </header>
        <main id="main" tabindex="-1">
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{#error}}<div class="problem" role="alert"><strong>That did not work.</strong> {{error}}</div>{{/error}}
        {{{content}}}
        </main>
        <footer class="foot">Waybill · routing sheets for scanned paper</footer>
        </body>
        </html>
        """

    static let login = """
        <section class="card narrow">
          <h1>Sign in</h1>
          <p class="muted">Use the account your administrator made for you.</p>
          <form method="post" action="/login" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <input type="hidden" name="next" value="{{next}}">
            <label for="username">User name</label>
            <input id="username" name="username" autocomplete="username" required value="{{username}}" autofocus>
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required>
            <button type="submit">Sign in</button>
          </form>
        </section>
        """

    static let directives = """
        <div class="head">
          <h1>Your directives</h1>
          <a class="button" href="/directives/new">New directive</a>
        </div>
        <p class="muted">A directive says where scanned documents go. Print its routing sheet, lay it on top of
        the paper and scan the stack to <strong>{{scanAddress}}</strong>.</p>
        <form method="get" action="/sheets.pdf">
        {{#has_mine}}
        <div class="table-wrap">
        <table>
          <caption class="sr-only">Your directives</caption>
          <thead><tr><th scope="col"><span class="sr-only">Select</span></th><th scope="col">Title</th><th scope="col">Sends to</th>
          <th scope="col">Status</th><th scope="col">Expires</th><th scope="col">Uses</th></tr></thead>
          <tbody>
          {{#mine}}
          <tr>
            <td>{{#active}}<input type="checkbox" name="id" value="{{id}}" id="pick-{{id}}" aria-label="Select {{title}}">{{/active}}</td>
            <td><a href="/directives/{{id}}">{{title}}</a><div class="muted small">{{display}}</div></td>
            <td>{{#destinations}}<div class="dest">{{.}}</div>{{/destinations}}</td>
            <td><span class="badge {{status}}">{{status}}</span></td>
            <td>{{expires}}</td>
            <td>{{uses}}</td>
          </tr>
          {{/mine}}
          </tbody>
        </table>
        </div>
        {{/has_mine}}
        {{^mine}}<p class="empty">You have no directives yet. <a href="/directives/new">Make your first one</a>.</p>{{/mine}}
        {{#has_others}}
        <h2>Shared with you</h2>
        <div class="table-wrap">
        <table>
          <caption class="sr-only">Directives others share</caption>
          <thead><tr><th scope="col"><span class="sr-only">Select</span></th><th scope="col">Title</th><th scope="col">Owner</th>
          <th scope="col">Sends to</th><th scope="col">Status</th></tr></thead>
          <tbody>
          {{#others}}
          <tr>
            <td>{{#active}}<input type="checkbox" name="id" value="{{id}}" aria-label="Select {{title}}">{{/active}}</td>
            <td><a href="/directives/{{id}}">{{title}}</a><div class="muted small">{{display}} · {{visibility}}</div></td>
            <td>{{owner}}</td>
            <td>{{#destinations}}<div class="dest">{{.}}</div>{{/destinations}}</td>
            <td><span class="badge {{status}}">{{status}}</span></td>
          </tr>
          {{/others}}
          </tbody>
        </table>
        </div>
        {{/has_others}}
        {{#anyActive}}<p><button type="submit" class="secondary">Print the selected sheets as one PDF</button></p>{{/anyActive}}
        </form>
        """

    static let directiveForm = """
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <label for="title">Title</label>
        <input id="title" name="title" required maxlength="200" value="{{form.title}}" aria-describedby="title-hint">
        <p class="hint" id="title-hint">Printed on the sheet, e.g. “Accounts payable: invoices”.</p>
        <label for="destinations">Send to</label>
        <textarea id="destinations" name="destinations" rows="3" required aria-describedby="dest-hint">{{form.destinations}}</textarea>
        <div class="hint" id="dest-hint">One destination a line:
          <ul>
            <li>an email address, e.g. <code>ap@example.com</code></li>
            {{#has_roots}}<li>a folder: <code>folder:ROOT/sub/folder</code>, ROOT one of {{#roots}}<code>{{.}}</code> {{/roots}}</li>{{/has_roots}}
            {{#has_webhooks}}<li>a webhook starting with {{#webhooks}}<code>{{.}}</code> {{/webhooks}}</li>{{/has_webhooks}}
          </ul>
        </div>
        <div class="grid">
          <div>
            <label for="expires">Expires</label>
            <input id="expires" name="expires" value="{{form.expires}}" placeholder="30d or 2027-03-31" aria-describedby="expires-hint">
            <p class="hint" id="expires-hint">A date or a duration; empty: never.</p>
          </div>
          <div>
            <label for="idle_expiry">Expires when unused for</label>
            <input id="idle_expiry" name="idle_expiry" value="{{form.idle_expiry}}" placeholder="90d">
          </div>
          <div>
            <label for="max_uses">Most uses</label>
            <input id="max_uses" name="max_uses" type="number" min="1" value="{{form.max_uses}}" placeholder="no limit">
          </div>
          <div>
            <label for="visibility">Who may use it</label>
            <select id="visibility" name="visibility">
              <option value="private"{{#form.private}} selected{{/form.private}}>Only me</option>
              <option value="shared"{{#form.shared}} selected{{/form.shared}}>Shared: signed-in users</option>
              <option value="public"{{#form.public}} selected{{/form.public}}>Public: listed for everyone</option>
            </select>
          </div>
        </div>
        <div class="check">
          <input type="checkbox" id="delivery_confirmation" name="delivery_confirmation" value="on"{{#form.confirm}} checked{{/form.confirm}}>
          <label for="delivery_confirmation">Email me when documents are delivered</label>
        </div>
        <label for="notes">Notes</label>
        <textarea id="notes" name="notes" rows="2">{{form.notes}}</textarea>
        """

    static let directiveNew = """
        <h1>New directive</h1>
        <form method="post" action="/directives" class="stack card">
        {{> directive-form}}
        <button type="submit">Create directive</button>
        </form>
        """

    static let directive = """
        <div class="head">
          <div><h1>{{d.title}}</h1><p class="muted">{{d.display}} · owned by {{d.owner}} · {{d.visibility}}</p></div>
          <span class="badge {{d.status}}">{{d.status}}</span>
        </div>
        <div class="split">
          <section class="card">
            <h2>Routing sheet</h2>
            {{#d.active}}
            <a href="/directives/{{d.id}}/sheet.pdf"><img class="sheet" src="/directives/{{d.id}}/sheet.png?dpi=60"
              alt="Preview of the routing sheet for {{d.title}}" width="510" height="660"></a>
            <p><a class="button" href="/directives/{{d.id}}/sheet.pdf" download="sheet-{{d.id}}.pdf">Download the sheet (PDF)</a></p>
            <p class="hint">Print it at 100 %, put it on top of the documents, scan the stack to <strong>{{scanAddress}}</strong>.</p>
            {{/d.active}}
            {{^d.active}}<p>No sheet: {{d.explanation}}.</p>{{/d.active}}
          </section>
          <section class="card">
            <h2>Details</h2>
            <dl class="facts">
              <dt>Sends to</dt><dd>{{#d.destinations}}<div class="dest">{{.}}</div>{{/d.destinations}}</dd>
              <dt>Expires</dt><dd>{{d.expires}}</dd>
              <dt>Expires when unused for</dt><dd>{{d.idle}}</dd>
              <dt>Used</dt><dd>{{d.uses}}</dd>
              <dt>Last used</dt><dd>{{d.lastUsed}}</dd>
              <dt>Delivery confirmation</dt><dd>{{d.confirmation}}</dd>
              <dt>Created</dt><dd>{{d.created}}</dd>
              {{#d.notes}}<dt>Notes</dt><dd>{{d.notes}}</dd>{{/d.notes}}
            </dl>
          </section>
        </div>
        {{#mayChange}}
        <section class="card">
          <h2>Change</h2>
          <form method="post" action="/directives/{{d.id}}" class="stack">
          {{> directive-form}}
          <button type="submit">Save changes</button>
          </form>
        </section>
        <section class="card danger">
          <h2>Revoke</h2>
          <p>Every printed sheet of this directive stops working at once. This cannot be undone.</p>
          <form method="post" action="/directives/{{d.id}}/revoke" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <div class="check"><input type="checkbox" id="confirm" name="confirm" value="yes" required>
            <label for="confirm">Yes, revoke “{{d.title}}”</label></div>
            <button type="submit" class="danger">Revoke directive</button>
          </form>
        </section>
        {{/mayChange}}
        """

    static let error = """
        <section class="card narrow">
          <h1>{{heading}}</h1>
          <p>{{message}}</p>
          <p><a href="/">Back to your directives</a></p>
        </section>
        """

    static let admin = """
        <h1>Administration</h1>
        <div class="tiles">
          <a class="tile" href="/admin/quarantine"><strong>Quarantine</strong><span>{{held}} held</span></a>
          <a class="tile" href="/admin/queue"><strong>Delivery queue</strong><span>{{depth}} waiting, {{dead}} dead</span></a>
          <a class="tile" href="/admin/journal"><strong>Journal</strong><span>search what happened</span></a>
          <a class="tile" href="/admin/users"><strong>Users</strong><span>{{users}} account(s)</span></a>
        </div>
        <h2>Configuration</h2>
        <p class="muted">Read from the configuration file and the environment when <code>waybill serve</code> starts;
        change them there and restart (see the README’s configuration table).</p>
        {{#sections}}
        <section class="card">
          <h3>{{title}}</h3>
          {{#has_items}}<ul class="plain">{{#items}}<li><code>{{.}}</code></li>{{/items}}</ul>{{/has_items}}
          {{^items}}<p class="muted">{{empty}}</p>{{/items}}
        </section>
        {{/sections}}
        """

    static let users = """
        <h1>Users</h1>
        <div class="table-wrap">
        <table>
          <caption class="sr-only">Users</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Since</th></tr></thead>
          <tbody>{{#users}}<tr><td>{{name}}</td><td>{{role}}</td><td>{{created}}</td></tr>{{/users}}</tbody>
        </table>
        </div>
        <section class="card">
          <h2>Add a user</h2>
          <form method="post" action="/admin/users" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label for="name">User name</label>
            <input id="name" name="name" required autocomplete="off">
            <label for="password">Password (at least 8 characters)</label>
            <input id="password" name="password" type="password" required minlength="8" autocomplete="new-password">
            <div class="check"><input type="checkbox" id="admin" name="admin" value="on"><label for="admin">Administrator</label></div>
            <button type="submit">Add user</button>
          </form>
        </section>
        """

    static let account = """
        <h1>Your account</h1>
        <p>Signed in as <strong>{{name}}</strong> ({{role}}).</p>
        <section class="card">
          <h2>API tokens</h2>
          <p class="muted">Scripts call the JSON API with <code>Authorization: Bearer &lt;token&gt;</code> (see docs/openapi.yaml).</p>
          {{#newToken}}<div class="notice" role="status"><p>Your new token, shown this once:</p><p><code class="token">{{newToken}}</code></p></div>{{/newToken}}
          {{#has_tokens}}
          <div class="table-wrap"><table>
            <caption class="sr-only">Your API tokens</caption>
            <thead><tr><th scope="col">Token</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col"></th></tr></thead>
            <tbody>{{#tokens}}<tr><td>#{{id}}</td><td>{{created}}</td><td>{{lastUsed}}</td>
            <td>{{#revoked}}revoked {{revoked}}{{/revoked}}{{^revoked}}<form method="post" action="/account/tokens/{{id}}/revoke">
            <input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="link">Revoke</button></form>{{/revoked}}</td></tr>{{/tokens}}</tbody>
          </table></div>
          {{/has_tokens}}
          <form method="post" action="/account/tokens"><input type="hidden" name="_csrf" value="{{csrf}}">
          <button type="submit" class="secondary">Create a token</button></form>
        </section>
        <section class="card">
          <h2>Change your password</h2>
          <p class="muted">You stay signed in here; every other browser signed in as you is signed out.</p>
          <form method="post" action="/account/password" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label for="current">Current password</label>
            <input id="current" name="current" type="password" required autocomplete="current-password">
            <label for="new">New password (at least 8 characters)</label>
            <input id="new" name="new" type="password" required minlength="8" autocomplete="new-password">
            <label for="repeat">New password again</label>
            <input id="repeat" name="repeat" type="password" required minlength="8" autocomplete="new-password">
            <button type="submit">Change password</button>
          </form>
        </section>
        """

    static let activity = """
        <h1>Activity</h1>
        <p class="muted">Scans that used your directives or that you sent{{#all}} (another user's){{/all}}, newest first.</p>
        {{#has_messages}}
        <div class="table-wrap"><table>
          <caption class="sr-only">Messages</caption>
          <thead><tr><th scope="col">Received</th><th scope="col">From</th><th scope="col">Directives</th><th scope="col">Outcome</th></tr></thead>
          <tbody>{{#messages}}<tr><td><a href="/activity/{{id}}">{{received}}</a></td><td>{{sender}}</td>
          <td>{{#directives}}<div>{{.}}</div>{{/directives}}</td><td><span class="badge {{state}}">{{state}}</span> {{outcome}}</td></tr>{{/messages}}</tbody>
        </table></div>
        {{/has_messages}}
        {{^messages}}<p class="empty">Nothing yet: scans routed by your directives appear here.</p>{{/messages}}
        """

    static let message = """
        <h1>Message {{m.id}}</h1>
        <dl class="facts card">
          <dt>Received</dt><dd>{{m.received}}</dd>
          <dt>From</dt><dd>{{m.sender}}</dd>
          <dt>State</dt><dd><span class="badge {{m.state}}">{{m.state}}</span> {{m.outcome}}</dd>
          <dt>Directives</dt><dd>{{#jobs}}<div><a href="/directives/{{directive}}">{{title}}</a> ({{directive}})</div>{{/jobs}}{{^jobs}}none{{/jobs}}</dd>
        </dl>
        {{#quarantined}}<p><a class="button secondary" href="/admin/quarantine/{{m.id}}">Open it in the quarantine</a></p>{{/quarantined}}
        <h2>Scanned pages</h2>
        {{#pagesNote}}<p class="muted">{{pagesNote}}</p>{{/pagesNote}}
        <div class="pages">{{#pages}}<figure><a href="{{url}}"><img src="{{url}}" alt="Page {{number}} of the scan" loading="lazy"></a><figcaption>Page {{number}}</figcaption></figure>{{/pages}}</div>
        <h2>Deliveries</h2>
        {{#has_deliveries}}
        <div class="table-wrap"><table>
          <caption class="sr-only">Deliveries</caption>
          <thead><tr><th scope="col">To</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Last error</th></tr></thead>
          <tbody>{{#deliveries}}<tr><td class="dest">{{destination}}</td><td><span class="badge {{state}}">{{state}}</span></td><td>{{attempts}}</td><td>{{error}}</td></tr>{{/deliveries}}</tbody>
        </table></div>
        {{/has_deliveries}}
        {{^deliveries}}<p class="muted">No deliveries.</p>{{/deliveries}}
        <h2>Journal</h2>
        <ol class="journal">{{#journal}}<li><time>{{at}}</time> <strong>{{event}}</strong> {{detail}} <span class="muted">[{{actor}}]</span></li>{{/journal}}</ol>
        """

    static let quarantine = """
        <h1>Quarantine</h1>
        <p class="muted">Messages Waybill refused to route, with the reason. Open one to see its pages and decide.
        {{#all}}<a href="/admin/quarantine">Show held ones only</a>{{/all}}{{^all}}<a href="/admin/quarantine?all=true">Show released, rerouted and deleted ones too</a>{{/all}}</p>
        {{#has_entries}}
        <div class="table-wrap"><table>
          <caption class="sr-only">Quarantined messages</caption>
          <thead><tr><th scope="col">Since</th><th scope="col">From</th><th scope="col">Reason</th><th scope="col">State</th></tr></thead>
          <tbody>{{#entries}}<tr><td><a href="/admin/quarantine/{{id}}">{{at}}</a></td><td>{{sender}}</td>
          <td><strong>{{reason}}</strong><div class="small">{{detail}}</div></td><td><span class="badge {{state}}">{{state}}</span></td></tr>{{/entries}}</tbody>
        </table></div>
        {{/has_entries}}
        {{^entries}}<p class="empty">Nothing is held in quarantine.</p>{{/entries}}
        """

    static let quarantineEntry = """
        <h1>Quarantined message {{e.id}}</h1>
        <dl class="facts card">
          <dt>Reason</dt><dd><strong>{{e.reason}}</strong>: {{e.detail}}</dd>
          <dt>From</dt><dd>{{e.sender}}</dd>
          <dt>To</dt><dd>{{e.recipients}}</dd>
          {{#e.subject}}<dt>Subject</dt><dd>{{e.subject}}</dd>{{/e.subject}}
          <dt>State</dt><dd><span class="badge {{e.state}}">{{e.state}}</span></dd>
        </dl>
        {{#held}}
        <div class="split">
        <section class="card">
          <h2>Route to a directive</h2>
          <form method="post" action="/admin/quarantine/{{e.id}}/reroute" class="stack">
            <input type="hidden" name="_csrf" value="{{csrf}}">
            <label for="directive">Directive</label>
            <select id="directive" name="directive" required>{{^choices}}<option value="">no active directive</option>{{/choices}}{{#choices}}<option value="{{id}}">{{title}} ({{display}})</option>{{/choices}}</select>
            <button type="submit">Deliver every page there</button>
          </form>
        </section>
        <section class="card">
          <h2>Release or delete</h2>
          <form method="post" action="/admin/quarantine/{{e.id}}/release"><input type="hidden" name="_csrf" value="{{csrf}}">
          <p>Run it through the routing rules again, after fixing what refused it.</p><button type="submit" class="secondary">Release</button></form>
          <form method="post" action="/admin/quarantine/{{e.id}}/delete" class="stack"><input type="hidden" name="_csrf" value="{{csrf}}">
          <div class="check"><input type="checkbox" id="confirm" name="confirm" value="yes" required><label for="confirm">Yes, delete it for good</label></div>
          <button type="submit" class="danger">Delete</button></form>
        </section>
        </div>
        {{/held}}
        <h2>Pages</h2>
        {{#morePages}}<p class="muted">{{morePages}}</p>{{/morePages}}
        <div class="pages">{{#pages}}<figure><a href="{{url}}"><img src="{{url}}" alt="Page {{number}} of the scan" loading="lazy"></a><figcaption>Page {{number}}</figcaption></figure>{{/pages}}</div>
        {{^pages}}<p class="muted">No pages to show.</p>{{/pages}}
        <h2>Journal</h2>
        <ol class="journal">{{#journal}}<li><time>{{at}}</time> <strong>{{event}}</strong> {{detail}} <span class="muted">[{{actor}}]</span></li>{{/journal}}</ol>
        """

    static let queue = """
        <h1>Delivery queue</h1>
        <form method="get" action="/admin/queue" class="inline">
          <label for="state">Show</label>
          <select id="state" name="state">{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/states}}</select>
          <button type="submit" class="secondary">Show</button>
        </form>
        {{#has_rows}}
        <div class="table-wrap"><table>
          <caption class="sr-only">Deliveries</caption>
          <thead><tr><th scope="col">#</th><th scope="col">Message</th><th scope="col">To</th><th scope="col">State</th>
          <th scope="col">Attempts</th><th scope="col">Next / last error</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>{{#rows}}<tr><td>{{id}}</td><td>{{message}}</td><td class="dest">{{destination}}</td><td><span class="badge {{state}}">{{state}}</span></td>
          <td>{{attempts}}</td><td>{{next}}<div class="small">{{error}}</div></td>
          <td>{{#actionable}}<form method="post" action="/admin/queue/{{id}}/retry"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="link">Retry now</button></form>
          <form method="post" action="/admin/queue/{{id}}/purge"><input type="hidden" name="_csrf" value="{{csrf}}"><button type="submit" class="link">Purge</button></form>{{/actionable}}</td></tr>{{/rows}}</tbody>
        </table></div>
        {{/has_rows}}
        {{^rows}}<p class="empty">No deliveries in this state.</p>{{/rows}}
        """

    static let journal = """
        <h1>Journal</h1>
        <form method="get" action="/admin/journal" class="grid filters">
          <div><label for="message">Message</label><input id="message" name="message" value="{{q.message}}"></div>
          <div><label for="directive">Directive</label><input id="directive" name="directive" value="{{q.directive}}" placeholder="K7QM2-XR9PC"></div>
          <div><label for="user">User</label><input id="user" name="user" value="{{q.user}}"></div>
          <div><label for="since">Since</label><input id="since" name="since" type="date" value="{{q.since}}"></div>
          <div><label for="until">Until</label><input id="until" name="until" type="date" value="{{q.until}}"></div>
          <div class="end"><button type="submit" class="secondary">Search</button></div>
        </form>
        {{#has_entries}}
        <div class="table-wrap"><table>
          <caption class="sr-only">Journal entries</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Message</th><th scope="col">Event</th><th scope="col">Detail</th><th scope="col">By</th></tr></thead>
          <tbody>{{#entries}}<tr><td>{{at}}</td><td>{{message}}</td><td>{{event}}</td><td>{{detail}}</td><td>{{actor}}</td></tr>{{/entries}}</tbody>
        </table></div>
        {{/has_entries}}
        {{#searched}}{{^entries}}<p class="empty">No journal entries match.</p>{{/entries}}{{/searched}}
        {{^searched}}<p class="muted">Fill in any of the fields: a message id, a directive, the user whose directives it used, a range of days.</p>{{/searched}}
        """

    /// Plain, modern, readable: system fonts, 4.5:1 contrast or better, visible focus, one
    /// column on a phone.
    static let css = """
        :root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0a58ca;--accent-ink:#fff;
        --ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--radius:10px}
        *{box-sizing:border-box}
        html{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg)}
        body{margin:0;min-height:100vh;display:flex;flex-direction:column}
        a{color:var(--accent)}
        :focus-visible{outline:3px solid #f0b400;outline-offset:2px}
        .skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:2}
        .sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        .bar{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;padding:.75rem 1.25rem;background:#0d1b2a;color:#fff}
        .bar a{color:#fff;text-decoration:none}.bar nav{display:flex;flex-wrap:wrap;gap:1rem;flex:1}
        .bar nav a{padding:.25rem .1rem;border-bottom:2px solid transparent}.bar nav a[aria-current=page],.bar nav a:hover{border-color:#7fb3ff}
        .brand{font-weight:700;font-size:1.15rem;letter-spacing:.02em}
        .signout button{color:#fff}
        main{width:100%;max-width:72rem;margin:0 auto;padding:1.5rem 1.25rem;flex:1}
        .foot{color:var(--muted);text-align:center;padding:1rem;font-size:.85rem}
        h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.2rem;margin:1.5rem 0 .75rem}h3{margin:.2rem 0 .5rem}
        .head{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:1rem}
        .card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1.25rem;margin:1rem 0}
        .card h2{margin-top:0}.narrow{max-width:26rem;margin:2rem auto}
        .danger.card{border-color:#ffb3b8}
        .split{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}
        .stack{display:flex;flex-direction:column;gap:.35rem}.stack button{align-self:flex-start;margin-top:.75rem}
        label{font-weight:600;margin-top:.5rem}
        input,select,textarea{font:inherit;padding:.55rem .65rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--ink);width:100%}
        textarea{resize:vertical}
        .check{display:flex;align-items:center;gap:.5rem;margin-top:.75rem}.check input{width:auto}.check label{margin:0;font-weight:400}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:0 1rem}
        .filters .end{display:flex;align-items:flex-end}
        .inline{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}.inline select{width:auto}
        button,.button{font:inherit;font-weight:600;display:inline-block;padding:.55rem 1rem;border-radius:6px;border:1px solid var(--accent);
        background:var(--accent);color:var(--accent-ink);text-decoration:none;cursor:pointer}
        button.secondary,.button.secondary{background:#fff;color:var(--accent)}
        button.danger{background:var(--bad);border-color:var(--bad)}
        button.link{background:none;border:0;padding:0;color:var(--accent);text-decoration:underline;font-weight:400}
        .hint,.muted{color:var(--muted)}.hint{font-size:.9rem;margin:.1rem 0 .4rem}.hint ul{margin:.25rem 0;padding-left:1.2rem}
        .small{font-size:.85rem}
        .table-wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:var(--radius)}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.6rem .75rem;border-bottom:1px solid var(--line);vertical-align:top}
        thead th{background:#eef1f4;font-size:.9rem}tbody tr:last-child td{border-bottom:0}
        .dest{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85rem;word-break:break-all}
        .badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600;background:#eaeef2;color:var(--ink)}
        .badge.active,.badge.delivered,.badge.done{background:#dafbe1;color:var(--ok)}
        .badge.revoked,.badge.dead,.badge.quarantined,.badge.held{background:#ffebe9;color:var(--bad)}
        .badge.expired,.badge.idle-expired,.badge.used-up,.badge.queued,.badge.sending{background:#fff8c5;color:var(--warn)}
        .notice{background:#ddf4ff;border:1px solid #54aeff;padding:.75rem 1rem;border-radius:var(--radius)}
        .problem{background:#ffebe9;border:1px solid #ff8182;padding:.75rem 1rem;border-radius:var(--radius);margin-bottom:1rem}
        .empty{padding:1.5rem;background:var(--card);border:1px dashed var(--line);border-radius:var(--radius);text-align:center}
        img.sheet{width:100%;max-width:340px;height:auto;border:1px solid var(--line);box-shadow:0 2px 8px rgba(0,0,0,.08);background:#fff}
        .facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}.facts dt{font-weight:600;color:var(--muted)}.facts dd{margin:0}
        .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem}
        .tile{display:flex;flex-direction:column;background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1rem;text-decoration:none;color:var(--ink)}
        .tile span{color:var(--muted)}.tile:hover{border-color:var(--accent)}
        .pages{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:1rem}.pages img{width:100%;border:1px solid var(--line);background:#fff}
        figure{margin:0}figcaption{font-size:.85rem;color:var(--muted)}
        .journal{padding-left:1.2rem}.journal time{font-variant-numeric:tabular-nums;color:var(--muted)}
        ul.plain{list-style:none;padding:0;margin:0}
        code.token{word-break:break-all;font-size:1rem}
        @media (max-width:40rem){.bar{gap:.5rem;justify-content:space-between}.bar nav{order:3;flex-basis:100%;gap:.9rem;font-size:.95rem}.facts{grid-template-columns:1fr}.head h1{font-size:1.35rem}}
        """
}
