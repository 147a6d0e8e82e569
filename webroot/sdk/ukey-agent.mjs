// ES module entry of the ukey-agent SDK: the same API as window.UKeyAgent.
//   import UKeyAgent, { detect, authenticate } from "https://127.0.0.1:27443/sdk/ukey-agent.mjs";
import "./ukey-agent.js";

const api = globalThis.UKeyAgent;
export const { configure, detect, permissionState, listTokens, onTokenChange, verifyPin, authenticate, sign,
               language,
               UKeyAgentError } = api;
export default api;
