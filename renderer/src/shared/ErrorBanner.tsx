import { useAirlock, useSnapshot } from '../state/hooks';

export function ErrorBanner() {
  const { error } = useSnapshot();
  const store = useAirlock();
  if (!error) return null;
  return (
    <div className="banner banner-error" role="alert" data-code={error.code}>
      <span className="banner-code">{error.code}</span>
      <span className="banner-message">{error.message}</span>
      <button type="button" className="btn btn-ghost" onClick={() => store.dismissError()} aria-label="Dismiss error">
        ×
      </button>
    </div>
  );
}
