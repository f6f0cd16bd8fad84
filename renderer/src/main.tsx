import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { pickClient } from './api';
import { AirlockStore } from './state/store';
import { StoreContext } from './state/hooks';
import { App } from './App';
import './styles.css';

const { client, transport } = pickClient();
const store = new AirlockStore(client);
void store.start();
// Events can be missed while a connection is down; catch up when the window comes back.
window.addEventListener('focus', () => void store.refresh());

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <StoreContext.Provider value={store}>
      <App transport={transport} />
    </StoreContext.Provider>
  </StrictMode>,
);
