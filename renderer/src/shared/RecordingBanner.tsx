import { useSnapshot } from '../state/hooks';
import { bytes, dateTime } from './format';

/**
 * Shown on every view while the record cannot be written (its database refuses writes): the gateway
 * then refuses every request, so the reviewer must know why agents see 503s. Before that, a warning
 * while the disk that holds the record is low. Text only.
 */
export function RecordingBanner() {
  const { status } = useSnapshot();
  const r = status?.recording;
  if (r && r.state !== 'failing' && status?.disk?.low) {
    return (
      <div className="banner banner-warn" role="status" data-code="record-disk-low">
        <span className="banner-code">disk</span>
        <span className="banner-message">
          The disk that holds Airlock's record has {bytes(status.disk.freeBytes)} free. When it is full, Airlock refuses
          every request until space is freed.
        </span>
      </div>
    );
  }
  if (!r || r.state !== 'failing') return null;
  return (
    <div className="banner banner-error" role="alert" data-code="record-unavailable">
      <span className="banner-code">record</span>
      <span className="banner-message">
        Airlock cannot write its record ({r.error}, since {dateTime(r.since)}). Every request is refused until
        the database takes writes again; what was recorded meanwhile is held in memory and written then.
      </span>
    </div>
  );
}
