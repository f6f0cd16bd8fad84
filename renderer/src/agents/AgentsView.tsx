import { useState } from 'react';
import { useSnapshot } from '../state/hooks';
import { useKeys } from '../shared/keys';
import { dateTime } from '../shared/format';

export function AgentsView() {
  const { agents, loaded, unavailable } = useSnapshot();
  const [sel, setSel] = useState(-1);
  useKeys({
    j: () => setSel((s) => Math.min(agents.length - 1, s + 1)),
    k: () => setSel((s) => Math.max(0, s - 1)),
  });
  return (
    <div className="page">
      <div className="pane-head">
        <h1>Agents</h1>
        <span className="muted small">{agents.length} registered</span>
      </div>
      {agents.length === 0 ? (
        <p className="empty muted">{loaded ? 'No agents yet. Add one with `airlock agent add <name>`.' : unavailable ? `Agents not loaded: ${unavailable}` : 'Loading…'}</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Groups</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {agents.map((a, i) => (
              <tr key={a.name} className={i === sel ? 'selected' : ''} onClick={() => setSel(i)}>
                <td className="mono">{a.name}</td>
                <td>
                  {a.groups.map((g) => (
                    <span key={g} className="badge">{g}</span>
                  ))}
                </td>
                <td className="muted">{dateTime(a.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
