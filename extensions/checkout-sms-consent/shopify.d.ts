// Types for the `shopify` global of each module. The Shopify CLI regenerates this file
// (`shopify app dev` / `build`); it is kept in the repo so `npm run check` works without it.
import '@shopify/ui-extensions';

//@ts-ignore
declare module './src/Checkout.tsx' {
  const shopify: import('@shopify/ui-extensions/purchase.checkout.contact.render-after').Api;
  const globalThis: { shopify: typeof shopify };
}
