// xterm's WebGL renderer, used only where it helps: on hardware WebGL2.

import { WebglAddon } from '@xterm/addon-webgl';

let hardwareWebgl = null;

/**
 * Whether WebGL2 runs on a GPU. A software implementation (SwiftShader in headless or
 * GPU-less browsers) is slower than xterm's DOM renderer and draws its canvas at the
 * wrong scale when the device pixel ratio is not 1, so it is not worth using.
 */
function hasHardwareWebgl() {
  if (hardwareWebgl !== null) return hardwareWebgl;
  const gl = document.createElement('canvas').getContext('webgl2', { failIfMajorPerformanceCaveat: true });
  if (!gl) return (hardwareWebgl = false);
  // Chromium and Safari mask RENDERER ("WebKit WebGL"); Firefox names the renderer there
  // and deprecates the debug extension, so ask the extension only when masked.
  let renderer = String(gl.getParameter(gl.RENDERER));
  if (/^WebKit/.test(renderer)) {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    if (info) renderer = String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL));
  }
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return (hardwareWebgl = !/swiftshader|llvmpipe|softpipe|software/i.test(renderer));
}

/**
 * GPU rendering for an opened terminal when the browser has hardware WebGL2; xterm keeps
 * its DOM renderer otherwise, and goes back to it after a lost context.
 * @param {import('@xterm/xterm').Terminal} term
 */
export function loadWebgl(term) {
  if (!hasHardwareWebgl()) return;
  try {
    const webgl = new WebglAddon();
    webgl.onContextLoss(() => webgl.dispose());
    term.loadAddon(webgl);
  } catch {
    // No WebGL2 after all (blocklisted GPU): the DOM renderer stays.
  }
}
