import { LabIcon } from '@jupyterlab/ui-components';

// A bucket seen from slightly above; the jp-icon3 class lets the theme recolour it.
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" fill-rule="evenodd" d="M12 2.5c-5 0-9 1.1-9 3l2.2 14.3c.3 1.6 3.3 2.2 6.8 2.2s6.5-.6 6.8-2.2L21 5.5c0-1.9-4-3-9-3zm0 1.6c4 0 6.6.8 7 1.4-.4.6-3 1.4-7 1.4s-6.6-.8-7-1.4c.4-.6 3-1.4 7-1.4z"/>
</svg>`;

export const bucketIcon = new LabIcon({ name: 'mlspace-s3magic:bucket', svgstr });
